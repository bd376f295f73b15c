/**
 * The seed of a test's random schedule (kill moments, delays): from the environment variable
 * `env` to replay a failure, else a fresh one. Printed before the test uses it, so a failing
 * run's output says how to replay it.
 */
export function scheduleSeed(env: string, label: string): number {
  const given = process.env[env];
  const seed = given !== undefined && given !== '' ? Number(given) : Date.now() % 1_000_000;
  if (!Number.isSafeInteger(seed)) throw new Error(`${env}=${given}: not an integer seed`);
  console.log(`${label} seed ${seed} (${env}=${seed} to replay)`);
  return seed;
}
