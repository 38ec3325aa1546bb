// ESLint flat config: typescript-eslint with type information, plus Pulumi's rules
// (no Output inside a template literal).
import pulumi from "@pulumi/eslint-plugin";
import tseslint from "typescript-eslint";

export default tseslint.config(
    { ignores: ["node_modules/", "bin/", "bench/results/"] },
    ...tseslint.configs.recommended,
    {
        files: ["**/*.ts"],
        languageOptions: {
            parserOptions: { project: "./tsconfig.json", tsconfigRootDir: import.meta.dirname },
        },
        plugins: { "@pulumi": pulumi },
        rules: {
            "@pulumi/no-output-in-template-literal": "error",
            "@typescript-eslint/no-floating-promises": "error",
            "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
        },
    },
    {
        // Size limits for product code (everything but tests): a file a newcomer can read whole,
        // functions that fit on a screen. Tests are exempt (they are lists of cases).
        files: ["**/*.ts"],
        ignores: ["test/**/*.ts"],
        rules: {
            "max-lines": ["error", { max: 600, skipBlankLines: false, skipComments: false }],
            "max-lines-per-function": [
                "error",
                { max: 80, skipBlankLines: false, skipComments: false, IIFEs: true },
            ],
        },
    },
    {
        // Tests read loosely-typed manifests recorded by the mocks.
        files: ["test/**/*.ts"],
        rules: {
            "@typescript-eslint/no-explicit-any": "off",
            "@typescript-eslint/no-require-imports": "off",
            // node:test's describe/it return promises the runner itself awaits.
            "@typescript-eslint/no-floating-promises": "off",
        },
    },
);
