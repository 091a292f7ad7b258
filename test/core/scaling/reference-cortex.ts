/**
 * An independent, deliberately plain implementation of Cortex's autoscaler tick as
 * reference/cortex.md §2.3 writes it (the fixed stabilization rule), used only to cross-check the
 * policies decision by decision. It shares no code with core/: it reads its own parameters and keeps
 * its own history, the way autoscaler.go does.
 */
export interface ReferenceParams {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly target: number;
  readonly downscaleStabilizationPeriodMs: number;
  readonly upscaleStabilizationPeriodMs: number;
  readonly maxDownscaleFactor: number;
  readonly maxUpscaleFactor: number;
  readonly downscaleTolerance: number;
  readonly upscaleTolerance: number;
}

export class ReferenceCortexAutoscaler {
  private readonly recs: { t: number; rec: number }[] = [];
  private startTime: number | null = null;
  /** The recommendation of the last tick with data (after caps, before stabilization). */
  lastRecommendation: number | null = null;

  constructor(private readonly p: ReferenceParams) {}

  /** One tick at `now` (ms) with the API at `cur` replicas; avg null = metrics not available. Returns the request. */
  tick(now: number, cur: number, avg: number | null): number {
    if (this.startTime === null) this.startTime = now;
    if (avg === null) {
      this.lastRecommendation = null;
      return cur;
    }
    const p = this.p;
    const raw = avg / p.target;
    let rec = Math.ceil(raw);
    if (raw < cur && raw > cur * (1 - p.downscaleTolerance)) rec = cur;
    if (raw > cur && raw < cur * (1 + p.upscaleTolerance)) rec = cur;
    const floor = Math.min(cur - 1, Math.ceil(cur * p.maxDownscaleFactor));
    rec = Math.max(rec, floor);
    const ceilg = Math.max(cur + 1, Math.ceil(cur * p.maxUpscaleFactor));
    rec = Math.min(rec, ceilg);
    rec = Math.max(rec, 1);
    rec = Math.max(rec, p.minReplicas);
    rec = Math.min(rec, p.maxReplicas);
    this.recs.push({ t: now, rec });
    const keep = Math.max(p.downscaleStabilizationPeriodMs, p.upscaleStabilizationPeriodMs);
    while (this.recs.length > 0 && this.recs[0].t <= now - keep) this.recs.shift();
    this.lastRecommendation = rec;

    const uptime = now - this.startTime;
    let req = rec;
    if (req < cur) {
      const within = this.recs.filter((r) => r.t > now - p.downscaleStabilizationPeriodMs).map((r) => r.rec);
      if (uptime < p.downscaleStabilizationPeriodMs) req = cur;
      else if (within.length > 0) {
        const f = Math.min(Math.max(...within), cur);
        if (req < f) req = f;
      }
    }
    if (req > cur) {
      const within = this.recs.filter((r) => r.t > now - p.upscaleStabilizationPeriodMs).map((r) => r.rec);
      if (uptime < p.upscaleStabilizationPeriodMs) req = cur;
      else if (within.length > 0) {
        const c = Math.max(Math.min(...within), cur);
        if (req > c) req = c;
      }
    }
    return req;
  }
}
