// A ms-scale pure TypeScript model for the serving benchmark: `layers` dense 256×256 ReLU layers over
// a 256-float input (weights from a fixed-seed generator), about 1 ms of CPU per prediction at
// layers = 4 on the benchmark machine (a shared 2-core VM). Returns the argmax as the class and the top score.
import type { PredictArgs, PredictorContext } from '../../core/predictor/predictor-contract.js';

const WIDTH = 256;

export class Predictor {
  private readonly weights: Float32Array[];
  private readonly a = new Float32Array(WIDTH);
  private readonly b = new Float32Array(WIDTH);

  constructor({ config }: PredictorContext) {
    const layers = Number(config.layers ?? 4);
    let seed = 42;
    const rand = (): number => {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      return seed / 2 ** 32 - 0.5;
    };
    this.weights = Array.from({ length: layers }, () => Float32Array.from({ length: WIDTH * WIDTH }, () => rand() * 0.12));
  }

  predict({ payload }: PredictArgs): { label: number; score: number } {
    const input = (payload as { x?: number[] }).x ?? [];
    let x = this.a;
    let y = this.b;
    for (let i = 0; i < WIDTH; i++) x[i] = input[i % Math.max(1, input.length)] ?? 0;
    for (const w of this.weights) {
      for (let r = 0; r < WIDTH; r++) {
        let s = 0;
        const off = r * WIDTH;
        for (let c = 0; c < WIDTH; c++) s += w[off + c] * x[c];
        y[r] = s > 0 ? s : 0;
      }
      const t = x;
      x = y;
      y = t;
    }
    let label = 0;
    for (let i = 1; i < WIDTH; i++) if (x[i] > x[label]) label = i;
    return { label, score: x[label] };
  }
}
