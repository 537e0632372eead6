/**
 * Reading the services' JSON answers defensively: a field of the wrong type becomes a neutral
 * value, so that one odd entry does not break a panel.
 */

export type JsonObject = { [key: string]: unknown };

/** The string, else `fallback`. */
export function text(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}

/** A whole count ≥ 0, else 0. */
export function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.floor(value) : 0;
}

/** A finite number, else null. */
export function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** The objects of an array (anything else in it dropped); [] when it is not an array. */
export function records(value: unknown): JsonObject[] {
  return Array.isArray(value) ? value.filter((v): v is JsonObject => !!v && typeof v === 'object') : [];
}
