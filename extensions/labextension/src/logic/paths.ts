/**
 * Where fetched assignments live: `<course>/<assignment>/<file>` relative to the server's
 * contents root (nbgrader's fetch layout; `POST learnhub/api/assignments/.../fetch` answers
 * `{"path": "<course>/<assignment>", ...}`), possibly below a prefix folder (`server_root` of
 * the context, when it is a relative folder).
 */

export interface IAssignmentPath {
  course: string;
  assignment: string;
  /** The path below the assignment folder, e.g. "basics.ipynb". */
  file: string;
}

function parts(path: string): string[] {
  return path.split('/').filter(p => p !== '' && p !== '.');
}

/**
 * The prefix (relative folder) under which course folders are, from the context's
 * `server_root`; absolute paths (the server's folder on disk) mean "no prefix".
 */
export function rootPrefix(serverRoot: string | null | undefined): string {
  if (!serverRoot || serverRoot.startsWith('/') || /^[A-Za-z]:[\\/]/.test(serverRoot)) {
    return '';
  }
  return parts(serverRoot).join('/');
}

/**
 * The course and assignment of a contents path, or null when it is not inside
 * `<course>/<assignment>/`. With `courses`, the course must be one of them.
 */
export function parseAssignmentPath(
  path: string,
  options: { serverRoot?: string; courses?: ReadonlyArray<string> } = {}
): IAssignmentPath | null {
  let segments = parts(path);
  const prefix = parts(rootPrefix(options.serverRoot));
  if (prefix.length) {
    if (prefix.some((p, i) => segments[i] !== p)) {
      return null;
    }
    segments = segments.slice(prefix.length);
  }
  if (segments.length < 3 || segments.some(s => s === '..')) {
    return null;
  }
  const [course, assignment, ...rest] = segments;
  if (options.courses && !options.courses.includes(course)) {
    return null;
  }
  return { course, assignment, file: rest.join('/') };
}

/** The contents path of an assignment folder (for opening its notebooks). */
export function assignmentFolder(course: string, assignment: string, serverRoot?: string): string {
  const prefix = rootPrefix(serverRoot);
  return [prefix, course, assignment].filter(Boolean).join('/');
}

/** Whether `path` is inside the folder `folder` (both contents paths). */
export function isInside(path: string, folder: string): boolean {
  const p = parts(path);
  const f = parts(folder);
  return f.length > 0 && p.length > f.length && f.every((s, i) => p[i] === s);
}

/** The notebook to open after fetching: the first `.ipynb` of the list, sorted as given. */
export function firstNotebook(notebooks: ReadonlyArray<string>): string | null {
  const found = notebooks.find(n => /\.ipynb$/i.test(n));
  return found ?? null;
}

/**
 * Turn a notebook path of a fetch answer (relative to the server root) or of an assignment's
 * release list (relative to the assignment folder) into a contents path.
 */
export function notebookPath(folder: string, notebook: string): string {
  const f = parts(folder);
  const n = parts(notebook);
  if (f.length && f.every((s, i) => n[i] === s)) {
    return n.join('/');
  }
  return [...f, ...n].join('/');
}
