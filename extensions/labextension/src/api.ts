/**
 * HTTP calls to the learnhub server extension of the user's own Jupyter server
 * (`<base url>learnhub/api/...`). ServerConnection adds the token and the XSRF header.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { LearnhubError, toLearnhubError } from './logic/errors';
import { ILearnhubContext, parseContext } from './logic/roles';

const NOT_LOADED =
  'learnhub is not available in this Jupyter server (its server extension is not loaded); ' +
  'start the server from the learnhub hub.';

function isLearnhubError(body: unknown): boolean {
  return typeof body === 'object' && body !== null && 'error' in body;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** learnhub's hub services, reached through `learnhub/api/services/{service}/...`. */
export type ServiceName = 'courses' | 'feedback' | 'recommender' | 'notifications' | 'analytics';

export class LearnhubApi {
  constructor(readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  /** Call `learnhub/api/<path>`; JSON in, JSON out; a failure throws a LearnhubError. */
  async request<T = any>(method: Method, path: string, body?: unknown): Promise<T> {
    // Join the path only: the query string must not go through path normalisation.
    const at = path.indexOf('?');
    const query = at === -1 ? '' : path.slice(at);
    const url = URLExt.join(this.settings.baseUrl, 'learnhub/api', at === -1 ? path : path.slice(0, at)) + query;
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (reason) {
      // ServerConnection.NetworkError: the server did not answer at all.
      throw new LearnhubError(0, 'The Jupyter server could not be reached: check your connection.');
    }
    const text = await response.text();
    let data: unknown = undefined;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    if (!response.ok) {
      if (response.status === 404 && !isLearnhubError(data)) {
        // Jupyter's own 404 page: nothing answers under learnhub/api in this server.
        throw new LearnhubError(404, NOT_LOADED, { path });
      }
      throw toLearnhubError(response.status, data);
    }
    return data as T;
  }

  /** Call a hub service's API (`/services/{service}/api/{path}`) through the server extension. */
  service<T = any>(service: ServiceName, method: Method, path: string, body?: unknown): Promise<T> {
    return this.request<T>(method, `services/${service}/${path.replace(/^\/+/, '')}`, body);
  }

  async context(): Promise<ILearnhubContext> {
    return parseContext(await this.request('GET', 'context'));
  }

  fetchAssignment(course: string, assignment: string): Promise<{ path: string; notebooks: string[] }> {
    return this.request('POST', `assignments/${enc(course)}/${enc(assignment)}/fetch`, {});
  }

  submitAssignment(course: string, assignment: string): Promise<ISubmission> {
    return this.request('POST', `assignments/${enc(course)}/${enc(assignment)}/submit`, {});
  }

  checkNotebook(course: string, assignment: string, path: string): Promise<{ id: string; status: string }> {
    return this.request('POST', `assignments/${enc(course)}/${enc(assignment)}/check`, { path });
  }

  /** The stream's WebSocket URL, with the token as @jupyterlab/services adds it to its own sockets. */
  streamUrl(): string {
    let url = URLExt.join(this.settings.wsUrl, 'learnhub/api/stream');
    const token = this.settings.token;
    if (this.settings.appendToken && token) {
      url += `?token=${encodeURIComponent(token)}`;
    }
    return url;
  }
}

/** The courses service's submission, as the submit endpoint answers it. */
export interface ISubmission {
  id: string;
  course_id: string;
  assignment_id: string;
  attempt: number;
  submitted_at: string | null;
  score: number | null;
  max_score: number | null;
  grading: { id: string; status: string } | null;
}

export function enc(segment: string): string {
  return encodeURIComponent(segment);
}
