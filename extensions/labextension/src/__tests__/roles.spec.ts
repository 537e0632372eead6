import {
  canManageEnrollments,
  dashboardUrl,
  formgraderUrl,
  isStaffRole,
  learnerCourses,
  parseContext,
  showsInstructorPanel,
  staffCourses
} from '../logic/roles';

const body = {
  user: 'ada',
  admin: false,
  courses: { 'intro-python': 'learner', 'data-viz': 'ta', 'ml-101': 'instructor', weird: 'owner' },
  hub_prefix: '/hub/',
  services_prefix: '/services/',
  server_root: ''
};

describe('role detection', () => {
  it('parses the context and drops unknown roles', () => {
    const context = parseContext(body);
    expect(context.user).toBe('ada');
    expect(context.courses).toEqual({ 'intro-python': 'learner', 'data-viz': 'ta', 'ml-101': 'instructor' });
  });

  it('rejects answers without a user', () => {
    expect(() => parseContext({ courses: {} })).toThrow(/no user/);
    expect(() => parseContext(null)).toThrow();
  });

  it('fills defaults for missing prefixes', () => {
    const context = parseContext({ user: 'bob' });
    expect(context.courses).toEqual({});
    expect(context.services_prefix).toBe('/services/');
    expect(context.admin).toBe(false);
  });

  it('finds the courses taught and learned', () => {
    const context = parseContext(body);
    expect(staffCourses(context)).toEqual(['data-viz', 'ml-101']);
    expect(learnerCourses(context)).toEqual(['intro-python']);
    expect(showsInstructorPanel(context)).toBe(true);
    expect(showsInstructorPanel(parseContext({ user: 'x', courses: { a: 'learner' } }))).toBe(false);
    expect(isStaffRole('ta')).toBe(true);
    expect(isStaffRole('learner')).toBe(false);
    expect(isStaffRole(null)).toBe(false);
  });

  it('lets instructors and admins manage members, not TAs', () => {
    const context = parseContext(body);
    expect(canManageEnrollments(context, 'ml-101')).toBe(true);
    expect(canManageEnrollments(context, 'data-viz')).toBe(false);
    expect(canManageEnrollments({ ...context, admin: true }, 'data-viz')).toBe(true);
  });

  it('builds the dashboard and Formgrader links', () => {
    const context = parseContext(body);
    expect(dashboardUrl(context, 'ml-101')).toBe('/services/analytics/courses/ml-101/dashboard');
    expect(dashboardUrl({ ...context, services_prefix: '/lh/services' }, 'a b')).toBe(
      '/lh/services/analytics/courses/a%20b/dashboard'
    );
    expect(formgraderUrl('http://127.0.0.1:8000/user/ada/')).toBe('http://127.0.0.1:8000/user/ada/formgrader');
    expect(formgraderUrl('/user/ada')).toBe('/user/ada/formgrader');
  });
});
