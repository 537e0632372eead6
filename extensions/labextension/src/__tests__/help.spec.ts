import {
  decodeCellRef,
  encodeCellRef,
  helpRequestBody,
  helpRequestFromEvent,
  mergeHelpRequest,
  parseHelpRequest
} from '../logic/help';
import { catalogueQuery, itemsOf, queryString } from '../logic/query';

const where = { course: 'intro-python', assignment: 'a1', file: 'basics.ipynb' };

describe('help requests', () => {
  it('builds the request with the cell and its notebook', () => {
    expect(helpRequestBody(where, '  Why does this fail? ', { id: 'uuid-1', gradeId: 'cell-sum', code: 'x = 1' })).toEqual({
      course: 'intro-python',
      assignment: 'a1',
      question: 'Why does this fail?',
      notebook: 'basics.ipynb',
      cell_id: 'basics.ipynb#cell-sum',
      code: 'x = 1'
    });
    expect(helpRequestBody(where, 'q', { id: 'uuid-1' }).cell_id).toBe('basics.ipynb#uuid-1');
    expect(helpRequestBody({ ...where, file: '' }, 'q').cell_id).toBeUndefined();
  });

  it('refuses an empty or too long question', () => {
    expect(() => helpRequestBody(where, '   ')).toThrow(/question/);
    expect(() => helpRequestBody(where, 'x'.repeat(5001))).toThrow(/5000/);
  });

  it('clips the cell reference and the code to the service limits', () => {
    expect(encodeCellRef('n'.repeat(300), 'c')!.length).toBe(255);
    expect(helpRequestBody(where, 'q', { code: 'y'.repeat(60000) }).code!.length).toBe(50000);
  });

  it('decodes cell references', () => {
    expect(decodeCellRef('basics.ipynb#cell-sum')).toEqual({ notebook: 'basics.ipynb', cell: 'cell-sum' });
    expect(decodeCellRef('plain')).toEqual({ notebook: '', cell: 'plain' });
    expect(decodeCellRef(null)).toEqual({ notebook: '', cell: '' });
  });

  it('reads answers from the help stream and merges them', () => {
    const open = parseHelpRequest({ id: 'r1', course: 'c', assignment: 'a', learner: 'ada', question: 'q', status: 'open' })!;
    const answered = helpRequestFromEvent({
      type: 'help-answer',
      request: { id: 'r1', course: 'c', assignment: 'a', learner: 'ada', question: 'q', status: 'answered', answer: 'Use *', answered_by: 'tina' }
    })!;
    expect(answered.answer).toBe('Use *');
    expect(helpRequestFromEvent({ type: 'subscribed', topics: [] })).toBeNull();
    const other = { ...open, id: 'r0' };
    expect(mergeHelpRequest([open, other], answered)).toEqual([answered, other]);
    expect(mergeHelpRequest([other], open).map(r => r.id)).toEqual(['r1', 'r0']);
  });
});

describe('query strings', () => {
  it('keeps non-empty values, encoded', () => {
    expect(catalogueQuery({ q: 'data science', tag: '', level: 'beginner' })).toBe('?q=data%20science&level=beginner');
    expect(catalogueQuery({ q: '', tag: '', level: '' })).toBe('');
    expect(queryString({ mine: true, limit: 5, none: null, off: false })).toBe('?mine=1&limit=5');
  });

  it('reads list answers', () => {
    expect(itemsOf({ items: [1, 2], next: null })).toEqual([1, 2]);
    expect(itemsOf({ error: {} })).toEqual([]);
    expect(itemsOf(null)).toEqual([]);
  });
});
