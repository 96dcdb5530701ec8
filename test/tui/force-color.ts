// Imported first by the Ink tests: chalk reads FORCE_COLOR when it loads, and a test that asserts "red OFF"
// needs colour even though vitest's stdout is not a terminal.
process.env.FORCE_COLOR = '1';
