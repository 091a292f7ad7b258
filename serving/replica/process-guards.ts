import type { Logger } from '../../core/ports/logger.js';

/**
 * Keeps a replica process up when predictor code leaks a rejected promise: Node's default
 * (`--unhandled-rejections=throw`) would end the process; here the rejection is logged and ignored.
 * Uncaught exceptions keep Node's default (exit): after one the process state is unknown, and the
 * orchestrator restarts the replica. Returns a function that removes the handler.
 */
export function installProcessGuards(log: Logger): () => void {
  const guardLog = log.child({ component: 'replica/process' });
  const onRejection = (reason: unknown): void => {
    guardLog.error({ err: reason }, 'unhandled promise rejection (ignored; the replica keeps serving)');
  };
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('unhandledRejection', onRejection);
  };
}
