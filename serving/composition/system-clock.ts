import { injectable } from 'inversify';
import type { Clock } from '../../core/clock.js';

/** Wall-clock time for production wiring; tests bind `ManualClock` instead. */
@injectable()
export class SystemClock implements Clock {
  now(): number {
    return Date.now();
  }
}
