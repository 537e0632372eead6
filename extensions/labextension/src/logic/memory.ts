/**
 * The memory limit's message: what `GET learnhub/api/limits` answers, and when a kernel's death was
 * the memory limit's doing (docs/containment.md). No JupyterLab here, so jest tests it as it is.
 */

/** `{"memory": {...}}` of the server extension (extensions/singleuser/limits.py). */
export interface IMemoryStatus {
  /** Bytes, or null when the server has no limit it knows of. */
  limit: number | null;
  usage: number | null;
  /** Processes of this server the kernel's OOM killer killed; null: no memory accounting, cannot tell. */
  oomKills: number | null;
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null;
}

export function parseMemoryStatus(body: unknown): IMemoryStatus | null {
  if (typeof body !== 'object' || body === null) {
    return null;
  }
  const memory = (body as { memory?: unknown }).memory;
  if (typeof memory !== 'object' || memory === null) {
    return null;
  }
  const m = memory as { [key: string]: unknown };
  return { limit: numberOrNull(m.limit), usage: numberOrNull(m.usage), oomKills: numberOrNull(m.oom_kills) };
}

/** 536870912 → "512 MiB", 1610612736 → "1.5 GiB" (binary units, as the limit is set). */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown = unit === 0 || Number.isInteger(value) ? String(value) : value.toFixed(1).replace(/\.0$/, '');
  return `${shown} ${units[unit]}`;
}

/** JupyterLab cuts a notification's message at this length (its Notification API says so). */
export const NOTIFICATION_LENGTH = 140;

/**
 * The notification when a kernel was killed by the memory limit: what happened and which limit,
 * within JupyterLab's 140 characters (the notebook's name is left out when it would not fit; what to
 * do is `memoryLimitAdvice`, behind the notification's button).
 */
export function memoryLimitMessage(limit: number | null, notebook: string | null): string {
  const why =
    limit !== null
      ? `it used more than ${formatBytes(limit)}, this server's memory limit`
      : 'it ran out of memory';
  const said = (kernel: string) => `${kernel} was stopped: ${why}. It restarts, without its variables.`;
  const named = notebook ? said(`The kernel of ${notebook}`) : '';
  return named && named.length <= NOTIFICATION_LENGTH ? named : said('Your kernel');
}

/** What to do about it, in the dialog the notification's button opens. */
export function memoryLimitAdvice(limit: number | null): string {
  const limitText = limit !== null ? `this server's memory limit of ${formatBytes(limit)}` : 'the memory available';
  return (
    `Everything your notebooks' kernels, terminals and this server hold in memory counts towards ${limitText}. ` +
    'When it is exceeded, the largest process (usually the kernel that allocated) is stopped, and ' +
    'the kernel restarts empty: run the cells you need again, from the top. To stay under the limit, ' +
    'del large objects you no longer need, read data in smaller pieces (e.g. chunksize in pandas), ' +
    'shut down the kernels of notebooks you are not using, or ask your instructor for a larger limit.'
  );
}

/**
 * The OOM-kill count last seen. A kernel's death is the memory limit's when the count went up since
 * then; every look moves the mark, so one kill is told once, however many kernels' statuses follow.
 */
export class OomKillMark {
  /** Remember the count (at start, and after each look); null when it cannot be told. */
  set(status: IMemoryStatus | null): void {
    this._seen = status?.oomKills ?? null;
  }

  get seen(): number | null {
    return this._seen;
  }

  /** True when `status` shows more kills than seen; the mark moves to `status` either way. */
  wentUp(status: IMemoryStatus | null): boolean {
    const now = status?.oomKills ?? null;
    const before = this._seen;
    if (now !== null) {
      this._seen = now;
    }
    // Without a first count (the look at start failed) a count cannot be told from older kills:
    // nothing is said (JupyterLab's own dialog still is), and this count is the mark from now on.
    return now !== null && before !== null && now > before;
  }

  private _seen: number | null = null;
}
