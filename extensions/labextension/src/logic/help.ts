/**
 * Help requests (extensions/feedback/helpdesk.py): `{course, assignment, question, cell_id, code}`.
 * The service stores `cell_id` (≤ 255 characters) but has no notebook field, so the notebook is
 * carried in it as `<notebook file>#<cell>` (the cell's nbgrader grade id, else its cell id).
 */
import { IAssignmentPath } from './paths';

export const MAX_QUESTION = 5000;
export const MAX_CODE = 50000;

export interface IHelpRequestBody {
  course: string;
  assignment: string;
  question: string;
  cell_id?: string;
  code?: string;
  /** Not stored by the service today; sent for when it is. */
  notebook?: string;
}

export interface IHelpRequest {
  id: string;
  course: string;
  assignment: string;
  learner: string;
  question: string;
  cell_id: string | null;
  code: string | null;
  status: string;
  answer: string | null;
  answered_by: string | null;
  created_at: string | null;
  answered_at: string | null;
}

/** `<notebook file>#<cell>`, clipped to the service's 255 characters. */
export function encodeCellRef(notebookFile: string, cell: string | null | undefined): string | undefined {
  if (!cell) {
    return notebookFile ? notebookFile.slice(0, 255) : undefined;
  }
  const ref = notebookFile ? `${notebookFile}#${cell}` : cell;
  return ref.slice(0, 255);
}

/** `{notebook, cell}` from a stored `cell_id` (either part may be empty). */
export function decodeCellRef(cellId: string | null | undefined): { notebook: string; cell: string } {
  if (!cellId) {
    return { notebook: '', cell: '' };
  }
  const at = cellId.lastIndexOf('#');
  if (at === -1) {
    return { notebook: '', cell: cellId };
  }
  return { notebook: cellId.slice(0, at), cell: cellId.slice(at + 1) };
}

/** Validate the question and build the request body; throws with a readable message. */
export function helpRequestBody(
  where: IAssignmentPath,
  question: string,
  cell: { id?: string | null; gradeId?: string | null; code?: string | null } = {}
): IHelpRequestBody {
  const text = question.trim();
  if (!text) {
    throw new Error('Write your question first.');
  }
  if (text.length > MAX_QUESTION) {
    throw new Error(`The question is longer than ${MAX_QUESTION} characters.`);
  }
  const body: IHelpRequestBody = {
    course: where.course,
    assignment: where.assignment,
    question: text,
    notebook: where.file
  };
  const cellRef = encodeCellRef(where.file, cell.gradeId || cell.id);
  if (cellRef) {
    body.cell_id = cellRef;
  }
  if (cell.code) {
    body.code = cell.code.length > MAX_CODE ? cell.code.slice(0, MAX_CODE) : cell.code;
  }
  return body;
}

function parseOne(raw: unknown): IHelpRequest | null {
  if (typeof raw !== 'object' || raw === null) {
    return null;
  }
  const r = raw as { [key: string]: unknown };
  if (typeof r.id !== 'string') {
    return null;
  }
  const s = (v: unknown) => (typeof v === 'string' ? v : null);
  return {
    id: r.id,
    course: s(r.course) ?? '',
    assignment: s(r.assignment) ?? '',
    learner: s(r.learner) ?? '',
    question: s(r.question) ?? '',
    cell_id: s(r.cell_id),
    code: s(r.code),
    status: s(r.status) ?? 'open',
    answer: s(r.answer),
    answered_by: s(r.answered_by),
    created_at: s(r.created_at),
    answered_at: s(r.answered_at)
  };
}

export { parseOne as parseHelpRequest };

/** The help request carried by a "help" stream event (`help-answer` / `help-request`). */
export function helpRequestFromEvent(event: unknown): IHelpRequest | null {
  if (typeof event !== 'object' || event === null) {
    return null;
  }
  const e = event as { [key: string]: unknown };
  if (e.type !== 'help-answer' && e.type !== 'help-request') {
    return null;
  }
  return parseOne(e.request);
}

/** Replace the request with the same id (or put a new one first); newest first otherwise kept. */
export function mergeHelpRequest(list: ReadonlyArray<IHelpRequest>, request: IHelpRequest): IHelpRequest[] {
  const index = list.findIndex(r => r.id === request.id);
  if (index === -1) {
    return [request, ...list];
  }
  const next = list.slice();
  next[index] = request;
  return next;
}
