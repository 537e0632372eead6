import {
  assignmentFolder,
  firstNotebook,
  isInside,
  notebookPath,
  parseAssignmentPath,
  rootPrefix
} from '../logic/paths';

describe('assignment paths', () => {
  it('finds course and assignment in <course>/<assignment>/<file>', () => {
    expect(parseAssignmentPath('intro-python/01-basics/basics.ipynb')).toEqual({
      course: 'intro-python',
      assignment: '01-basics',
      file: 'basics.ipynb'
    });
    expect(parseAssignmentPath('/intro-python/a1/sub/nb.ipynb')!.file).toBe('sub/nb.ipynb');
  });

  it('rejects paths that are not inside an assignment folder', () => {
    expect(parseAssignmentPath('Untitled.ipynb')).toBeNull();
    expect(parseAssignmentPath('intro-python/a1')).toBeNull();
    expect(parseAssignmentPath('intro-python/../x/y.ipynb')).toBeNull();
  });

  it('checks the course against the enrolled ones', () => {
    const courses = ['intro-python'];
    expect(parseAssignmentPath('intro-python/a1/x.ipynb', { courses })).not.toBeNull();
    expect(parseAssignmentPath('notes/week1/x.ipynb', { courses })).toBeNull();
  });

  it('strips a relative server root, ignores an absolute one', () => {
    expect(rootPrefix('')).toBe('');
    expect(rootPrefix('/home/ada')).toBe('');
    expect(rootPrefix('courses/')).toBe('courses');
    expect(parseAssignmentPath('courses/c/a/x.ipynb', { serverRoot: 'courses' })).toEqual({
      course: 'c',
      assignment: 'a',
      file: 'x.ipynb'
    });
    expect(parseAssignmentPath('c/a/x.ipynb', { serverRoot: 'courses' })).toBeNull();
    expect(parseAssignmentPath('c/a/x.ipynb', { serverRoot: '/home/ada' })).not.toBeNull();
    expect(assignmentFolder('c', 'a', 'courses')).toBe('courses/c/a');
    expect(assignmentFolder('c', 'a')).toBe('c/a');
  });

  it('tells whether a path is inside a folder', () => {
    expect(isInside('c/a/x.ipynb', 'c/a')).toBe(true);
    expect(isInside('c/ab/x.ipynb', 'c/a')).toBe(false);
    expect(isInside('c/a', 'c/a')).toBe(false);
    expect(isInside('x.ipynb', '')).toBe(false);
  });

  it('resolves notebook paths from fetch answers and release lists', () => {
    expect(notebookPath('intro-python/a1', 'basics.ipynb')).toBe('intro-python/a1/basics.ipynb');
    expect(notebookPath('intro-python/a1', 'intro-python/a1/basics.ipynb')).toBe('intro-python/a1/basics.ipynb');
    expect(firstNotebook(['data.csv', 'b.ipynb', 'a.ipynb'])).toBe('b.ipynb');
    expect(firstNotebook(['data.csv'])).toBeNull();
  });
});
