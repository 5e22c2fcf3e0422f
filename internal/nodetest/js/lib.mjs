// What every script shares: reading its settings from the environment
// (secrets never go in argv) and printing its one JSON line of results.

// env returns the environment variable name, and exits 2 if it is unset.
export function env(name) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    console.error(`${process.argv[1]}: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

// out prints the result as one JSON line on stdout, for the Go test.
export function out(result) {
  process.stdout.write(JSON.stringify(result) + '\n');
}
