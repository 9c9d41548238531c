// ESLint for lib/, scripts/ and test/: `npm run lint` checks, `npm run format` fixes what is safe.
// typescript-eslint's recommended rules, plus a few that read the types, chosen for the bugs this
// code can have: a promise nobody awaits or catches (send completions, timers in tests), an
// `await` or negation on a value of the wrong type, a cast that no longer casts anything.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'build-asan/', 'coverage/', 'prebuilds/', 'node_modules/'] },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    languageOptions: {
      // Each file is checked with the nearest tsconfig.json: the root one for lib/ and scripts/,
      // test/tsconfig.json (jest types) for test/.
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unsafe-unary-minus': 'error',
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      // `import x = require('m')` is TypeScript's typed CommonJS import (module: commonjs).
      '@typescript-eslint/no-require-imports': ['error', { allowAsImport: true }],
      // An unused parameter named _x is kept on purpose (a callback's fixed signature).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The library never prints; a test prints only on purpose, saying so with a directive.
    files: ['lib/**/*.ts', 'test/**/*.ts'],
    rules: { 'no-console': 'error' },
  },
  {
    files: ['test/**/*.ts'],
    languageOptions: { globals: globals.jest },
  },
  {
    // What child processes report back is parsed JSON: the integration tests read it as such.
    files: ['test/integration/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Plain CommonJS run by node itself: the jest config, the integration tests' child-process
    // and worker fixtures, the Windows side of the Wine test.
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: globals.node },
    rules: {
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module', globals: globals.node },
  },
);
