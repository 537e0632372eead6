import {
  lmsPath,
  parseLinks,
  parseScores,
  passbackSummary,
  rosterSyncText,
  scoreLine,
  waitingReason
} from '../logic/lms';

const link = {
  id: 'ctx-1',
  platform_id: 'p-1',
  deployment_id: 'dep-1',
  context_id: 'course-101',
  title: 'Data Science 101',
  course_id: 'intro-python',
  roster_sync: true,
  grade_passback: true,
  score_policy: 'best',
  last_roster_sync: null
};

const failed = {
  id: 's-1',
  course_id: 'intro-python',
  assignment_id: '01-basics',
  user: 'bea',
  score: 6.5,
  max_score: 10,
  status: 'failed',
  attempts: 5,
  last_error: 'the LMS answered 503'
};

describe('the linked LMS courses', () => {
  it('reads the courses service answer', () => {
    expect(parseLinks({ items: [link] })).toEqual([
      {
        id: 'ctx-1',
        contextId: 'course-101',
        title: 'Data Science 101',
        rosterSync: true,
        gradePassback: true,
        scorePolicy: 'best',
        lastRosterSync: null
      }
    ]);
  });

  it('drops entries without an id and reads an unknown policy as latest', () => {
    const parsed = parseLinks({ items: [{ ...link, id: '' }, { ...link, id: 'ctx-2', score_policy: 'worst' }, 7, null] });
    expect(parsed.map(l => [l.id, l.scorePolicy])).toEqual([['ctx-2', 'latest']]);
    expect(parseLinks(null)).toEqual([]);
    expect(parseLinks({ items: 'no' })).toEqual([]);
  });

  it('builds the course paths', () => {
    expect(lmsPath('intro python')).toBe('courses/intro%20python/lti');
    expect(lmsPath('c', 'scores/retry')).toBe('courses/c/lti/scores/retry');
  });
});

describe('the grade passback outbox', () => {
  it('takes the course counts from the answer, whatever rows it lists', () => {
    const { items, counts } = parseScores({ items: [failed], failed: 1, counts: { pending: 2, sent: 12, failed: 1 } });
    expect(counts).toEqual({ pending: 2, sent: 12, failed: 1 });
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ user: 'bea', assignment: '01-basics', score: 6.5, maxScore: 10, attempts: 5 });
  });

  it('counts the rows when an older service sends no counts, and drops rows of unknown status', () => {
    const { items, counts } = parseScores({
      items: [failed, { ...failed, id: 's-2', status: 'sent' }, { ...failed, id: 's-3', status: 'lost' }]
    });
    expect(items.map(i => i.id)).toEqual(['s-1', 's-2']);
    expect(counts).toEqual({ pending: 0, sent: 1, failed: 1 });
  });

  it('says what reached the gradebook, leaving out what is zero', () => {
    expect(passbackSummary({ pending: 0, sent: 0, failed: 0 })).toBe('0 sent to the LMS gradebook');
    expect(passbackSummary({ pending: 1, sent: 12, failed: 2 })).toBe('12 sent to the LMS gradebook, 1 waiting, 2 failed');
    expect(passbackSummary({ pending: 0, sent: 3, failed: 1 })).toBe('3 sent to the LMS gradebook, 1 failed');
  });

  it('names the learner, the assignment, the score and the tries of a failed score', () => {
    const [row] = parseScores({ items: [failed] }).items;
    expect(scoreLine(row)).toBe('bea, 01-basics: 6.5 / 10 (5 tries)');
    expect(scoreLine({ ...row, attempts: 1, score: null })).toBe('bea, 01-basics: – / 10 (1 try)');
  });

  it('gives the newest error of the rows still waiting, none for rows not tried yet', () => {
    const { items } = parseScores({
      items: [
        { ...failed, id: 'a', status: 'pending', attempts: 2, last_error: 'timed out' },
        { ...failed, id: 'b', status: 'pending', attempts: 1, last_error: 'the LMS answered 503' },
        { ...failed, id: 'c', status: 'pending', attempts: 0, last_error: '' }
      ]
    });
    expect(waitingReason(items)).toBe('the LMS answered 503');
    expect(waitingReason(items.slice(2))).toBe('');
  });
});

describe('the roster sync answer', () => {
  it('adds up the linked LMS courses and names who is no longer listed', () => {
    const answer = {
      contexts: {
        a: { enrolled: 1, updated: 0, inactive: 2, unchanged: 3, skipped: 0, dropped: ['tim', 'bea'] },
        b: { enrolled: 2, dropped: ['bea'] }
      }
    };
    expect(rosterSyncText(answer)).toBe('Roster synced: 3 enrolled, 2 no longer listed (bea, tim).');
    expect(rosterSyncText({ contexts: { a: { enrolled: 0, dropped: [] } } })).toBe('Roster synced: 0 enrolled.');
    expect(rosterSyncText('odd')).toBe('Roster synced.');
  });
});
