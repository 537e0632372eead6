/** Query strings for the services' list endpoints. */

/** `?q=..&tag=..` from the non-empty values, in the given order; "" when all are empty. */
export function queryString(params: { [key: string]: string | number | boolean | null | undefined }): string {
  const pairs: string[] = [];
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === '' || value === false) {
      continue;
    }
    const text = value === true ? '1' : String(value).trim();
    if (text === '') {
      continue;
    }
    pairs.push(`${encodeURIComponent(key)}=${encodeURIComponent(text)}`);
  }
  return pairs.length ? `?${pairs.join('&')}` : '';
}

export interface ICatalogueFilter {
  q: string;
  tag: string;
  level: string;
}

/** The catalogue query (`GET courses?q=&tag=&level=`). */
export function catalogueQuery(filter: ICatalogueFilter): string {
  return queryString({ q: filter.q, tag: filter.tag, level: filter.level });
}

/** `items` of a list answer (`{"items": [...], "next": ...}`), or [] if the body has none. */
export function itemsOf<T = unknown>(body: unknown): T[] {
  if (body && typeof body === 'object' && Array.isArray((body as { items?: unknown }).items)) {
    return (body as { items: T[] }).items;
  }
  return [];
}
