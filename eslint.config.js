// Lint rules: typescript-eslint's recommended set, plus a guard on the folder layering
// promised in DESIGN.md (storage/ and protocol/ never import server/).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'bench-data/**', 'test-artifacts/**', 'clients/web/vendor/**', 'protocol/prompb/gen/**', 'bench/peers/target/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { files: ['bin/**/*.js'], languageOptions: { globals: { process: 'readonly', URL: 'readonly' } } },
  // The web player's hand-written ES modules run in the browser.
  {
    files: ['clients/web/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries([
        'window', 'document', 'location', 'fetch', 'WebSocket', 'EventTarget', 'CustomEvent', 'URL',
        'URLSearchParams', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval',
        'requestAnimationFrame', 'cancelAnimationFrame', 'performance', 'atob', 'localStorage',
        'sessionStorage', 'ResizeObserver', 'Option', 'HTMLElement', 'HTMLButtonElement',
        'HTMLDetailsElement', 'HTMLInputElement', 'HTMLSelectElement', 'HTMLTextAreaElement', 'console'
      ].map((n) => [n, 'readonly'])),
    },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['storage/**', 'protocol/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/server/**'], message: 'storage/ and protocol/ never import server/' }] }],
    },
  },
  {
    files: ['protocol/**', 'storage/codec/**'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ['node:fs', 'node:fs/promises', 'fs', 'node:net', 'node:child_process'],
        patterns: [{ group: ['**/server/**'], message: 'storage/ and protocol/ never import server/' }],
      }],
    },
  },
);
