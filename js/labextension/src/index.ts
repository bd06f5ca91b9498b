/**
 * featurelab's JupyterLab extension: the panel's clicks become code cells.
 *
 * For every notebook's kernel it registers comm target "featurelab.cells". The kernel
 * (featurelab/ui/cell_bridge.py) says hello once, and this answers "ready": that is how
 * the panel knows cells will be inserted. Each insert request arrives on a comm of its
 * own, so a notebook opened in a second tab gets them as well.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { Kernel } from '@jupyterlab/services';
import { applyRequest, InsertRequest, NotebookLike } from './cells';

const TARGET = 'featurelab.cells';

function serve(panel: NotebookPanel, kernel: Kernel.IKernelConnection): void {
  kernel.registerCommTarget(TARGET, (comm, openMsg) => {
    const data = openMsg.content.data as any;
    if (data?.op === 'hello') {
      comm.send({ op: 'ready' });
    } else if (data?.op === 'insert_cell' && panel.content.model) {
      applyRequest(panel.content.model.sharedModel as unknown as NotebookLike, data as InsertRequest);
    }
  });
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'featurelab-cells:plugin',
  description: "Inserts the featurelab panel's actions as code cells below the panel",
  autoStart: true,
  requires: [INotebookTracker],
  activate: (_app: JupyterFrontEnd, tracker: INotebookTracker) => {
    tracker.widgetAdded.connect((_tracker, panel) => {
      const context = panel.sessionContext;
      const register = () => {
        const kernel = context.session?.kernel;
        if (kernel) serve(panel, kernel);
      };
      context.kernelChanged.connect(register);
      void context.ready.then(register);
    });
  }
};

export default plugin;
