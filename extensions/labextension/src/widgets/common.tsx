/** Small React pieces shared by the panels: loading and error states, async data, signals. */
import { ISignal } from '@lumino/signaling';
import * as React from 'react';

import { describeError } from '../logic/errors';

export interface IAsyncState<T> {
  loading: boolean;
  error: string | null;
  data: T | null;
  reload: () => void;
}

/**
 * Run `load` now and whenever `deps` change or `reload()` is called; the last answer wins.
 * A failure keeps the previous data (so a refresh that fails does not blank the panel).
 */
export function useAsync<T>(load: () => Promise<T>, deps: React.DependencyList): IAsyncState<T> {
  const [state, setState] = React.useState<{ loading: boolean; error: string | null; data: T | null }>({
    loading: true,
    error: null,
    data: null
  });
  const [tick, setTick] = React.useState(0);
  const generation = React.useRef(0);
  React.useEffect(() => {
    const mine = ++generation.current;
    setState(s => ({ ...s, loading: true }));
    load().then(
      data => {
        if (mine === generation.current) {
          setState({ loading: false, error: null, data });
        }
      },
      reason => {
        if (mine === generation.current) {
          setState(s => ({ loading: false, error: describeError(reason), data: s.data }));
        }
      }
    );
  }, [...deps, tick]);
  const reload = React.useCallback(() => setTick(t => t + 1), []);
  return { ...state, reload };
}

/** Call `handler` on every emission of `signal` while the component is mounted. */
export function useSignal<S, A>(signal: ISignal<S, A> | null | undefined, handler: (sender: S, args: A) => void): void {
  const ref = React.useRef(handler);
  ref.current = handler;
  React.useEffect(() => {
    if (!signal) {
      return;
    }
    const slot = (sender: S, args: A) => ref.current(sender, args);
    signal.connect(slot);
    return () => {
      signal.disconnect(slot);
    };
  }, [signal]);
}

/** Run `fn` every `ms` while mounted (and the document is visible). */
export function useInterval(fn: () => void, ms: number | null): void {
  const ref = React.useRef(fn);
  ref.current = fn;
  React.useEffect(() => {
    if (ms === null) {
      return;
    }
    const handle = setInterval(() => {
      if (typeof document === 'undefined' || document.visibilityState !== 'hidden') {
        ref.current();
      }
    }, ms);
    return () => clearInterval(handle);
  }, [ms]);
}

export function Loading(props: { testid: string; text?: string }): JSX.Element {
  return (
    <div className="lh-loading" data-testid={props.testid} role="status" aria-live="polite">
      <span className="lh-spinner" aria-hidden="true" />
      {props.text ?? 'Loading…'}
    </div>
  );
}

export function ErrorMessage(props: { testid: string; message: string; onRetry?: () => void }): JSX.Element {
  return (
    <div className="lh-error" data-testid={props.testid} role="alert">
      <span className="lh-error-text">{props.message}</span>
      {props.onRetry && (
        <button type="button" className="lh-button lh-button-small" onClick={props.onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Section(props: {
  title: string;
  testid: string;
  actions?: React.ReactNode;
  children: React.ReactNode;
}): JSX.Element {
  const headingId = `${props.testid}-heading`;
  return (
    <section className="lh-section" data-testid={props.testid} aria-labelledby={headingId}>
      <header className="lh-section-header">
        <h3 id={headingId} className="lh-section-title">
          {props.title}
        </h3>
        {props.actions}
      </header>
      {props.children}
    </section>
  );
}

/** A button that shows it is busy while its async action runs, and reports the action's error. */
export function ActionButton(props: {
  testid: string;
  label: string;
  busyLabel?: string;
  onClick: () => Promise<unknown> | void;
  disabled?: boolean;
  primary?: boolean;
  title?: string;
  ariaLabel?: string;
  onError?: (message: string) => void;
}): JSX.Element {
  const [busy, setBusy] = React.useState(false);
  const mounted = React.useRef(true);
  React.useEffect(
    () => () => {
      mounted.current = false;
    },
    []
  );
  const click = async () => {
    setBusy(true);
    try {
      await props.onClick();
    } catch (reason) {
      props.onError?.(describeError(reason));
    } finally {
      if (mounted.current) {
        setBusy(false);
      }
    }
  };
  return (
    <button
      type="button"
      className={`lh-button${props.primary ? ' lh-button-primary' : ''}`}
      data-testid={props.testid}
      disabled={props.disabled || busy}
      aria-busy={busy}
      aria-label={props.ariaLabel}
      title={props.title}
      onClick={() => void click()}
    >
      {busy ? props.busyLabel ?? `${props.label}…` : props.label}
    </button>
  );
}
