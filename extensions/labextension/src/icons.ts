/** The side panels' icons (themed with JupyterLab's jp-icon3 fill). */
import { LabIcon } from '@jupyterlab/ui-components';

function svg(body: string): string {
  return (
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    `<g class="jp-icon3" fill="#616161">${body}</g></svg>`
  );
}

export const coursesIcon = new LabIcon({
  name: 'learnhub:courses',
  svgstr: svg(
    '<path d="M4 4.5A2.5 2.5 0 0 1 6.5 2H20v16H6.5a.5.5 0 0 0 0 1H20v3H6.5A2.5 2.5 0 0 1 4 19.5zM8 6v2h8V6z"/>'
  )
});

export const nextIcon = new LabIcon({
  name: 'learnhub:next',
  svgstr: svg(
    '<path d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm3.5 6.5-2 5-5 2 2-5zM12 11a1 1 0 1 0 0 2 1 1 0 0 0 0-2z"/>'
  )
});

export const helpIcon = new LabIcon({
  name: 'learnhub:help',
  svgstr: svg(
    '<path d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 16h-2v-2h2zm2.1-7.8-.9.9c-.7.7-1.2 1.3-1.2 2.9h-2v-.5c0-1.1.5-2.1 1.2-2.8l1.2-1.3A2 2 0 1 0 10 8H8a4 4 0 1 1 7.1 2.2z"/>'
  )
});

export const instructorIcon = new LabIcon({
  name: 'learnhub:instructor',
  svgstr: svg('<path d="M12 3 1 9l11 6 9-4.9V17h2V9zM5 13.2v4L12 21l7-3.8v-4L12 17z"/>')
});
