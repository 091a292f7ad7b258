// A myelin TypeScript predictor (predictor.type: javascript or typescript).
interface Config {
  readonly threshold: number;
}

export class Predictor {
  private readonly threshold: number;

  constructor({ config }: { config: Config }) {
    this.threshold = config.threshold;
  }

  predict({ payload }: { payload: { text?: string } }): { label: string; score: number } {
    const text = payload.text ?? '';
    const positive = (text.match(/\b(good|great|love|excellent)\b/gi) ?? []).length;
    const negative = (text.match(/\b(bad|awful|hate|terrible)\b/gi) ?? []).length;
    const score = positive + negative === 0 ? 0.5 : positive / (positive + negative);
    return { label: score >= this.threshold ? 'positive' : 'negative', score };
  }
}
