// The upload page: a dataset (an archive or a folder of photos) and a base model, each with its
// progress and the service's verdict.
import { h, replace } from '../dom.js';
import { datasetUploadPanel } from './upload-dataset.js';
import { modelUploadPanel } from './upload-model.js';

export function uploadView(main) {
  const panels = [datasetUploadPanel(), modelUploadPanel()];
  replace(
    main,
    h('h1', {}, 'Upload'),
    panels.map((p) => p.el),
  );
  return () => panels.forEach((p) => p.stop());
}
