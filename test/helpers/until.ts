/** Polls `cond` every 20 ms until it holds; fails naming `what` after `ms`. Errors from `cond` fail at once. */
export async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  await waitFor(async () => (await cond()) || undefined, ms, what, { retryErrors: false });
}

/**
 * Polls `f` every 20 ms until it gives a value (not undefined or false) and returns it; fails
 * naming `what` after `ms`. By default an error from `f` counts as no value yet (a server
 * that is restarting).
 */
export async function waitFor<T>(f: () => Promise<T | undefined | false>, ms: number, what: string, opts: { retryErrors?: boolean } = {}): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = opts.retryErrors === false ? await f() : await f().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
