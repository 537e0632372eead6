/**
 * Per-cell feedback in a notebook: each graded test cell (`metadata.nbgrader.grade_id`) with a
 * result gets the class lh-cell-passed / lh-cell-failed and a small message node under it.
 */
import { Cell } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';
import { PanelLayout, Widget } from '@lumino/widgets';

import { slug } from './logic/format';
import { ITestResult, markerLines, pointsText } from './logic/results';

export const PASSED_CLASS = 'lh-cell-passed';
export const FAILED_CLASS = 'lh-cell-failed';
const MARKER_CLASS = 'lh-test-marker';

/** The nbgrader grade id of a cell, if it has one. */
export function gradeIdOf(cell: Cell): string | null {
  const nbgrader = cell.model.getMetadata('nbgrader') as { grade_id?: unknown } | undefined;
  return nbgrader && typeof nbgrader.grade_id === 'string' && nbgrader.grade_id ? nbgrader.grade_id : null;
}

class TestMarker extends Widget {
  constructor(test: ITestResult) {
    super();
    this.addClass(MARKER_CLASS);
    this.addClass(test.passed ? 'lh-passed' : 'lh-failed');
    const node = this.node;
    node.dataset.testid = `learnhub-test-result-${slug(test.gradeId)}`;
    node.dataset.gradeId = test.gradeId;
    node.dataset.status = test.passed ? 'passed' : 'failed';
    node.setAttribute('role', 'status');
    const head = document.createElement('div');
    head.className = 'lh-test-marker-head';
    const icon = document.createElement('span');
    icon.className = 'lh-test-marker-icon';
    icon.setAttribute('aria-hidden', 'true');
    icon.textContent = test.passed ? '✓' : '✗';
    const label = document.createElement('strong');
    label.textContent = `${test.passed ? 'Passed' : 'Failed'}: ${test.gradeId}`;
    head.append(icon, label);
    const points = pointsText(test);
    if (points) {
      const p = document.createElement('span');
      p.className = 'lh-test-marker-points';
      p.textContent = points;
      head.append(p);
    }
    node.append(head);
    const lines = markerLines(test);
    lines.forEach((line, index) => {
      const div = document.createElement('div');
      div.className = index === 0 ? 'lh-test-marker-message' : line.startsWith('Hint: ') ? 'lh-test-marker-hint' : 'lh-test-marker-explanation';
      div.textContent = line;
      node.append(div);
    });
  }
}

const markers = new WeakMap<Cell, TestMarker>();

function clearCell(cell: Cell): void {
  cell.removeClass(PASSED_CLASS);
  cell.removeClass(FAILED_CLASS);
  const marker = markers.get(cell);
  if (marker) {
    marker.dispose();
    markers.delete(cell);
  }
}

/** Show `results` (by grade id) on the notebook's cells; cells without a result are cleared. */
export function applyMarkers(panel: NotebookPanel, results: Map<string, ITestResult>): void {
  for (const cell of panel.content.widgets) {
    clearCell(cell);
    const gradeId = gradeIdOf(cell);
    const test = gradeId ? results.get(gradeId) : undefined;
    if (!test) {
      continue;
    }
    cell.addClass(test.passed ? PASSED_CLASS : FAILED_CLASS);
    const marker = new TestMarker(test);
    markers.set(cell, marker);
    // A cell outside the viewport may not have built its DOM yet: add the marker when it has.
    void cell.ready.then(() => {
      if (markers.get(cell) === marker && !marker.isDisposed && !cell.isDisposed) {
        (cell.layout as PanelLayout).addWidget(marker);
      }
    });
  }
}

export function clearMarkers(panel: NotebookPanel): void {
  for (const cell of panel.content.widgets) {
    clearCell(cell);
  }
}
