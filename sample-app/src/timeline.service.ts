import { Injectable, Logger } from '@nestjs/common';

export interface TimelineEntry {
  at: Date;
  actor: string;
  text: string;
}

/** A readable story of what happened, for the demo; every entry is also logged. */
@Injectable()
export class Timeline {
  private readonly logger = new Logger('Timeline');
  readonly entries: TimelineEntry[] = [];

  record(actor: string, text: string): void {
    this.entries.push({ at: new Date(), actor, text });
    this.logger.debug(`${actor}: ${text}`);
  }

  render(): string {
    const start = this.entries[0]?.at.getTime() ?? 0;
    return this.entries
      .map((e) => `  +${String(e.at.getTime() - start).padStart(5)} ms  ${e.actor.padEnd(10)} ${e.text}`)
      .join('\n');
  }
}
