/** The caller's context (`GET learnhub/api/context`) and what it means for the UI. */

export type CourseRole = 'learner' | 'ta' | 'instructor';

export interface ILearnhubContext {
  user: string;
  admin: boolean;
  courses: { [courseId: string]: CourseRole };
  hub_prefix: string;
  services_prefix: string;
  server_root: string;
}

const ROLES: ReadonlyArray<string> = ['learner', 'ta', 'instructor'];

function text(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

/** Validate and normalise the context answer; unknown roles are dropped. */
export function parseContext(body: unknown): ILearnhubContext {
  if (typeof body !== 'object' || body === null) {
    throw new Error('The learnhub context answer is not a JSON object.');
  }
  const raw = body as { [key: string]: unknown };
  if (typeof raw.user !== 'string' || !raw.user) {
    throw new Error('The learnhub context answer has no user.');
  }
  const courses: { [id: string]: CourseRole } = {};
  if (typeof raw.courses === 'object' && raw.courses !== null) {
    for (const [id, role] of Object.entries(raw.courses as { [key: string]: unknown })) {
      if (typeof role === 'string' && ROLES.includes(role)) {
        courses[id] = role as CourseRole;
      }
    }
  }
  return {
    user: raw.user,
    admin: raw.admin === true,
    courses,
    hub_prefix: text(raw.hub_prefix, '/hub/'),
    services_prefix: text(raw.services_prefix, '/services/'),
    server_root: text(raw.server_root, '')
  };
}

/** True for the roles that teach a course. */
export function isStaffRole(role: string | null | undefined): boolean {
  return role === 'ta' || role === 'instructor';
}

/** Course ids where the user is a TA or an instructor, sorted. */
export function staffCourses(context: ILearnhubContext): string[] {
  return Object.keys(context.courses)
    .filter(id => isStaffRole(context.courses[id]))
    .sort();
}

/** Course ids where the user is a learner, sorted. */
export function learnerCourses(context: ILearnhubContext): string[] {
  return Object.keys(context.courses)
    .filter(id => context.courses[id] === 'learner')
    .sort();
}

/** Whether the Instructor panel should exist: the user teaches at least one course. */
export function showsInstructorPanel(context: ILearnhubContext): boolean {
  return staffCourses(context).length > 0;
}

/** Only instructors (and admins) may add or remove members; TAs may list them. */
export function canManageEnrollments(context: ILearnhubContext, courseId: string): boolean {
  return context.admin || context.courses[courseId] === 'instructor';
}

function joinPrefix(prefix: string, ...parts: string[]): string {
  const base = prefix.endsWith('/') ? prefix : prefix + '/';
  return base + parts.map(encodeURIComponent).join('/');
}

/** The analytics service's course dashboard (instructors and TAs). */
export function dashboardUrl(context: ILearnhubContext, courseId: string): string {
  return joinPrefix(context.services_prefix, 'analytics', 'courses', courseId, 'dashboard');
}

/**
 * nbgrader's Formgrader in the user's own server: `<base url>formgrader`, where the base URL
 * is the server's (`/user/<name>/` on the hub).
 */
export function formgraderUrl(baseUrl: string): string {
  const base = baseUrl.endsWith('/') ? baseUrl : baseUrl + '/';
  return base + 'formgrader';
}
