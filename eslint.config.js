// Lint: typescript-eslint's recommended rules, plus the project's own constraints from
// shared/STYLE.md that a linter can check (no process.env or process.exit in library code, no
// function over 60 lines of code).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "dist-check/", "dist-docs/", "node_modules/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: "readonly", console: "readonly", Buffer: "readonly", URL: "readonly", setTimeout: "readonly", clearTimeout: "readonly", setInterval: "readonly", clearInterval: "readonly" } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  { files: ["**/*.cjs"], languageOptions: { sourceType: "commonjs", globals: { module: "writable", require: "readonly" } } },
  {
    // Library code: options are passed explicitly; only the CLI and the test harness entry read the environment.
    files: ["src/**/*.ts"],
    ignores: ["src/cli/**", "src/**/*.test.ts"],
    rules: {
      "no-restricted-properties": [
        "error",
        { object: "process", property: "exit", message: "library code never exits the process" },
        { object: "AbortSignal", property: "timeout", message: "use deadline() from core/async.ts: inside AbortSignal.any(), Node 20 can garbage-collect a timeout signal before it fires, and the deadline is lost" },
        { object: "process", property: "env", message: "library code reads no environment: take an option (the CLI reads the environment and passes it on)" },
      ],
    },
  },
  {
    // A function reads on one screen: at most 60 lines of code (blank lines and comments not
    // counted). The exception: `kubeloop init`'s project template (cli/init.ts), one literal.
    files: ["src/**/*.ts"],
    ignores: ["src/**/*.test.ts", "src/cli/init.ts"],
    rules: { "max-lines-per-function": ["error", { max: 60, skipBlankLines: true, skipComments: true, IIFEs: true }] },
  },
  {
    // The documented exceptions to "no process.env below the CLI": each reads it only as the
    // default of an explicit `env` option, or hands it to a child process it starts.
    //  - client/config.ts: `Client.load({ env })` (KUBECONFIG, HOME, the in-cluster variables);
    //  - client/credentials.ts: an exec plugin inherits the environment, as kubectl's does;
    //  - testing/: the toolkit's `startControlPlane({ env })` and `runOperator`'s
    //    KUBELOOP_OPERATOR_KUBECONFIG (the RBAC proofs run a test's operator as another identity).
    files: ["src/client/config.ts", "src/client/credentials.ts", "src/testing/**/*.ts"],
    ignores: ["src/**/*.test.ts"],
    rules: {
      "no-restricted-properties": [
        "error",
        { object: "process", property: "exit", message: "library code never exits the process" },
        { object: "AbortSignal", property: "timeout", message: "use deadline() from core/async.ts: inside AbortSignal.any(), Node 20 can garbage-collect a timeout signal before it fires, and the deadline is lost" },
      ],
    },
  },
);
