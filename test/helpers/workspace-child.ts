/**
 * A child for the workspace crash test: opens the workspace in argv[2] and changes it in a
 * loop (add a bookmark, every third turn also put a layout and delete the oldest bookmark),
 * printing one line per acknowledged change ("add <id>", "put <name>", "del <id>") until it
 * is killed. Turns start at argv[3], so that a later run's layouts carry higher turns than an
 * earlier run's (a put in flight when killed may land unacknowledged).
 */
import { WorkspaceStore } from '../../server/workspace/store.js';

const dir = process.argv[2] as string;
const store = await WorkspaceStore.open(dir);
for (let i = Number(process.argv[3] ?? 0); ; i++) {
  const b = await store.addBookmark({ ts: 1_000_000 + i, note: `n${i} ${'x'.repeat(i % 200)}`, url: `pos=${i}` }, 5_000_000 + i);
  process.stdout.write(`add ${b.id}\n`);
  if (i % 3 === 2) {
    await store.putLayout(`l${i % 7}`, { turn: i, panels: Array.from({ length: i % 50 }, (_, k) => k) }, 5_000_000 + i);
    process.stdout.write(`put l${i % 7} ${i}\n`);
    const oldest = store.listBookmarks()[0]!;
    await store.deleteBookmark(oldest.id);
    process.stdout.write(`del ${oldest.id}\n`);
  }
}
