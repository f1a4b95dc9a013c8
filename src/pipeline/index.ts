export { createPipeline, type Pipeline, type PipelineDeps, type Stage } from './run.js';
export { RequestContext } from './context.js';
