import {
  describeError,
  errorDetails,
  errorMessage,
  LearnhubError,
  streamErrorMessage,
  toLearnhubError
} from '../logic/errors';

describe('error messages from error bodies', () => {
  it('takes the message of a learnhub error body', () => {
    const body = { error: { status: 409, message: 'all 3 attempts at a1 are used', details: { reason: 'attempt_limit' } } };
    expect(errorMessage(409, body)).toBe('all 3 attempts at a1 are used');
    expect(errorDetails(body)).toEqual({ reason: 'attempt_limit' });
  });

  it('reads the message of a 502 from a service that is down', () => {
    const body = { error: { status: 502, message: 'The recommender service is not answering.', details: { service: 'recommender' } } };
    const error = toLearnhubError(502, body);
    expect(error).toBeInstanceOf(LearnhubError);
    expect(error.status).toBe(502);
    expect(error.message).toBe('The recommender service is not answering.');
    expect(error.details.service).toBe('recommender');
  });

  it('reads Jupyter Server error bodies', () => {
    expect(errorMessage(404, { message: 'No such file', reason: null })).toBe('No such file');
    expect(errorMessage(403, { reason: 'Forbidden' })).toBe('Forbidden');
  });

  it('falls back to a status text for HTML pages and empty bodies', () => {
    expect(errorMessage(502, '<html><body>Bad gateway</body></html>')).toMatch(/not available/);
    expect(errorMessage(503, undefined)).toMatch(/not available/);
    expect(errorMessage(418, {})).toBe('The request failed (418).');
    expect(errorMessage(0, null)).toMatch(/could not be reached/);
  });

  it('keeps a short plain-text body', () => {
    expect(errorMessage(500, 'database is locked')).toBe('database is locked');
  });

  it('keeps the request id and returns {} details when there are none', () => {
    const error = toLearnhubError(500, { error: { message: 'boom', request_id: 'abc123' } });
    expect(error.requestId).toBe('abc123');
    expect(error.details).toEqual({});
  });

  it('describes anything thrown', () => {
    expect(describeError(new LearnhubError(409, 'already fetched'))).toBe('already fetched');
    expect(describeError(new Error('oops'))).toBe('oops');
    expect(describeError('text')).toBe('text');
    expect(describeError(undefined)).toBe('Something went wrong.');
  });

  it('reads stream error frames', () => {
    expect(streamErrorMessage({ status: 502, message: 'feedback is down' })).toBe('feedback is down');
    expect(streamErrorMessage({ status: 404 })).toBe('Not found (404).');
    expect(streamErrorMessage('lost')).toBe('lost');
  });
});
