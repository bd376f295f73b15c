/** Writes docs/errors.md from the error table in protocol/errors.ts (`npm run docs:errors`). */
import { writeFileSync } from 'node:fs';
import { ERRORS } from '../protocol/errors.js';

const rows = Object.entries(ERRORS).map(([code, e]) => `| \`${code}\` | ${e.status} | ${e.meaning} |`);
const text = `# Error codes

Every error Tapedeck reports carries a stable code; clients match on the code, never on the
message. Over HTTP an error is \`{ "error": { "code": "...", "message": "..." } }\` with the
status below; on a session stream it is an \`error\` frame with the same code; the CLI prints
\`code: message\`. Generated from \`protocol/errors.ts\` by \`npm run docs:errors\` (a test checks
that this page and the table agree).

| code | HTTP status | meaning |
|---|---|---|
${rows.join('\n')}
`;
writeFileSync(new URL('../docs/errors.md', import.meta.url), text);
