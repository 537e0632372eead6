import { recommendationsOf } from '../logic/recommendations';

/** An answer of GET /services/recommender/api/recommendations?kind=exercise, as the service gives it. */
const ANSWER = {
  user: 'lena',
  kind: 'exercise',
  course: 'intro-python',
  model: { version: 3, tracer: 'prior' },
  items: [
    {
      item: '01-basics/shout',
      title: 'Shouting',
      course: 'intro-python',
      score: 0.71,
      reason: 'you are at 25% on Working with strings; this exercise practises it at your level, to consolidate',
      reason_code: 'practice',
      reason_params: { skill: 'strings', mastery: 0.25, fit: 'consolidate' },
      skill: 'strings',
      mastery: 0.25,
      p_success: 0.48,
      ready: true,
      due: '2026-12-08T23:59:00+00:00',
      rank: 1
    },
    {
      item: '02-control-flow/letter-grade',
      title: 'Letter grades',
      score: 0.2,
      reason: 'first work on Variables and types (not started yet); this exercise needs it',
      reason_code: 'prerequisite_first',
      reason_params: { skill: 'conditionals', prerequisite: 'variables-and-types', prerequisite_started: false },
      ready: false,
      rank: 2
    }
  ],
  next: null
};

describe('recommendations', () => {
  it('keeps the text the service rendered and the structured reason beside it', () => {
    const [first, second] = recommendationsOf(ANSWER);
    expect(first.reason).toBe(ANSWER.items[0].reason);
    expect(first.reason_code).toBe('practice');
    expect(first.reason_params).toEqual({ skill: 'strings', mastery: 0.25, fit: 'consolidate' });
    expect(first.course).toBe('intro-python');
    expect(first.due).toBe('2026-12-08T23:59:00+00:00');
    expect(second.ready).toBe(false);
    expect(second.reason_code).toBe('prerequisite_first');
  });

  it('reads an answer without the structured reason (an older service) as text only', () => {
    const [item] = recommendationsOf({ items: [{ item: 'intro-python', title: '', score: 1, reason: 'popular' }] });
    expect(item).toMatchObject({ item: 'intro-python', title: 'intro-python', reason: 'popular', reason_code: null });
    expect(item.reason_params).toEqual({});
  });

  it('drops entries without an item and answers that are not lists', () => {
    expect(recommendationsOf({ items: [null, { title: 'x' }, { item: '' }, 3] })).toEqual([]);
    expect(recommendationsOf({ error: { status: 502 } })).toEqual([]);
    expect(recommendationsOf(null)).toEqual([]);
  });
});
