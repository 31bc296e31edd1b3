import { InvalidArgumentError } from "commander";

/**
 * Parsers of numeric command-line arguments for commander: a bad one is a usage error
 * (commander prints it and the program exits with code 2).
 */
export function positiveInteger(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidArgumentError("must be a positive integer");
  return value;
}

export function nonNegativeInteger(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError("must be a non-negative integer");
  return value;
}

/** Seconds, fractions allowed (TTLs). */
export function seconds(text: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value)) throw new InvalidArgumentError("must be a number of seconds");
  return value;
}

/** A fraction in [0, 1] (read ratio). */
export function ratio(text: string): number {
  const value = Number(text);
  if (text.trim() === "" || !(value >= 0 && value <= 1)) throw new InvalidArgumentError("must be a number from 0 to 1");
  return value;
}
