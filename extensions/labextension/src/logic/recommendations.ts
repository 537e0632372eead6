/**
 * The recommender's answers (`GET recommendations`) as the "Next for you" panel shows them.
 *
 * Every item says why twice: `reason`, the English text the service renders (what the panel
 * shows), and `reason_code` / `reason_params`, the same as data (docs/recommender-service.md lists
 * the codes). The panel never builds text from the code: one renderer, in the service.
 */

export interface IRecommendation {
  item: string;
  title: string;
  score: number;
  /** Why, in English. */
  reason: string;
  /** Why, as a code: practice, not_started, prerequisite_first, similar_learners, goal_match, ... */
  reason_code: string | null;
  /** The code's parameters (skill, mastery, due, ...). */
  reason_params: { [key: string]: unknown };
  rank?: number;
  /** Exercises and assignments: the course, the skill practised, whether its prerequisites are met. */
  course?: string;
  skill?: string;
  ready?: boolean;
  due?: string | null;
}

function isObject(value: unknown): value is { [key: string]: unknown } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The items of a recommendations answer, normalised; entries without an item id are dropped. */
export function recommendationsOf(body: unknown): IRecommendation[] {
  if (!isObject(body) || !Array.isArray(body.items)) {
    return [];
  }
  const out: IRecommendation[] = [];
  for (const raw of body.items) {
    if (!isObject(raw) || typeof raw.item !== 'string' || !raw.item) {
      continue;
    }
    out.push({
      ...(raw as object),
      item: raw.item,
      title: typeof raw.title === 'string' && raw.title ? raw.title : raw.item,
      score: typeof raw.score === 'number' ? raw.score : 0,
      reason: typeof raw.reason === 'string' ? raw.reason : '',
      reason_code: typeof raw.reason_code === 'string' ? raw.reason_code : null,
      reason_params: isObject(raw.reason_params) ? raw.reason_params : {}
    } as IRecommendation);
  }
  return out;
}
