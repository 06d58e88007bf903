//! The positive-integer `--name N` options of the measuring scripts (rtt_floor, cpu_per_write).

/** The value after `name` on the command line, or `fallback`; exits 2 when it is not one. */
export function intOption(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value <= 0) {
    console.error(`${name} takes a positive integer, not ${process.argv[i + 1] ?? "nothing"}`);
    process.exit(2);
  }
  return value;
}
