/**
 * Where an action cell goes, written against the few methods of JupyterLab's shared
 * notebook model it needs, so it is tested without JupyterLab (js/test/labextension.test.js).
 */

export const METADATA_KEY = 'featurelab';
const WIDGET_MIME = 'application/vnd.jupyter.widget-view+json';

/** What the kernel sends (featurelab/ui/cell_bridge.py). */
export interface InsertRequest {
  op: 'insert_cell';
  source: string;
  model_id: string;
  action_id: string;
  action_ids: string[];
  coalesce_key: string | null;
  /** A coalesced action: the id of the action whose cell it updates. */
  replaces: string | null;
  /**
   * The cell that ran this lab's latest code action after the panel's last click (its
   * id), if any: a click after running code lands after that code, so the notebook
   * replays in the order things happened (a `lab.reset()` cell, then the new clicks).
   */
  after_cell?: string | null;
}

export interface CellLike {
  id?: string;
  cell_type: string;
  getMetadata(key: string): any;
  setMetadata(key: string, value: any): void;
  setSource(source: string): void;
  getOutputs?(): any[];
}

export interface NotebookLike {
  cells: readonly CellLike[];
  insertCell(index: number, cell: { cell_type: 'code'; source: string; metadata: any }): unknown;
  transact(f: () => void): void;
}

function actionIds(cell: CellLike): string[] {
  const meta = cell.getMetadata(METADATA_KEY);
  if (!meta || typeof meta !== 'object') return [];
  return Array.isArray(meta.action_ids) ? meta.action_ids : [meta.action_id];
}

function findAction(nb: NotebookLike, actionId: string): number {
  return nb.cells.findIndex(cell => actionIds(cell).includes(actionId));
}

/** The cell whose outputs show the panel with this widget model id; -1 if none. */
export function panelCellIndex(nb: NotebookLike, modelId: string): number {
  return nb.cells.findIndex(
    cell =>
      cell.cell_type === 'code' &&
      (cell.getOutputs?.() ?? []).some(
        (output: any) => output?.data?.[WIDGET_MIME]?.model_id === modelId
      )
  );
}

/**
 * Applies one request; returns the index of the cell holding the action. Idempotent:
 * every client of the kernel receives every request, and a client may receive one
 * twice, so an action already in a cell changes nothing.
 */
export function applyRequest(nb: NotebookLike, req: InsertRequest): number {
  const existing = findAction(nb, req.action_id);
  if (existing >= 0) return existing;
  const metadata = {
    action_id: req.action_id,
    action_ids: req.action_ids,
    coalesce_key: req.coalesce_key
  };
  const target = req.replaces ? findAction(nb, req.replaces) : -1;
  let at = target;
  nb.transact(() => {
    if (target >= 0) {
      nb.cells[target].setSource(req.source);
      nb.cells[target].setMetadata(METADATA_KEY, metadata);
      return;
    }
    // Below the panel (or below the code run since the last click), after the action
    // cells already there: cells in the order things happened.
    // A panel no longer shown in any output (outputs cleared) gets its cells at the end.
    const panel = panelCellIndex(nb, req.model_id);
    const code = req.after_cell ? nb.cells.findIndex(cell => cell.id === req.after_cell) : -1;
    at = panel >= 0 ? panel + 1 : nb.cells.length;
    if (code >= at) at = code + 1;
    while (at < nb.cells.length && actionIds(nb.cells[at]).length > 0) at++;
    nb.insertCell(at, { cell_type: 'code', source: req.source, metadata: { [METADATA_KEY]: metadata } });
  });
  return at;
}
