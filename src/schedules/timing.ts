// When a schedule runs: a five-field cron expression read in the schedule's own time zone (croner does the
// daylight-saving arithmetic: a 02:30 run on the night clocks skip is not lost, nor run twice when they go back),
// minus the maintenance windows, in which nothing starts. A run that falls in a window is skipped, not moved to the
// window's end: a nightly import postponed into the working day is rarely what anyone wants.
import { Cron } from 'croner';
import { HubError, type FieldError } from '../errors.ts';

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface MaintenanceWindow {
  /** Days the window starts on (default every day); a window that ends before it starts runs past midnight. */
  days?: Weekday[];
  /** HH:MM, in the schedule's time zone. */
  start: string;
  end: string;
}

const NICKNAMES = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);
const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;
/** Cron runs looked at to find one outside the windows before the schedule is taken to never run. */
const MAX_SKIPS = 2000;

function minutesOf(hhmm: string): number {
  const m = HHMM.exec(hhmm)!;
  return Number(m[1]) * 60 + Number(m[2]);
}

/** Problems with a schedule's timing, as field errors (empty when it is fine). */
export function checkTiming(input: { cron?: unknown; timezone?: unknown; maintenanceWindows?: unknown }, pointer = ''): FieldError[] {
  const errors: FieldError[] = [];
  const tzOk = typeof input.timezone === 'string' && isTimeZone(input.timezone);
  if (input.timezone !== undefined && !tzOk) {
    errors.push({ field: `${pointer}/timezone`, code: 'timezone', message: 'is not an IANA time zone (e.g. Europe/London, America/New_York, UTC)' });
  }
  if (input.cron !== undefined) {
    const cron = typeof input.cron === 'string' ? input.cron.trim() : '';
    const fields = cron.split(/\s+/);
    if (!NICKNAMES.has(cron) && fields.length !== 5) {
      errors.push({ field: `${pointer}/cron`, code: 'cron', message: 'needs five fields (minute hour day-of-month month day-of-week), e.g. "30 2 * * *", or @daily, @hourly' });
    } else {
      try {
        new Cron(cron, { paused: true, timezone: tzOk ? (input.timezone as string) : 'UTC' });
      } catch (err) {
        errors.push({ field: `${pointer}/cron`, code: 'cron', message: (err as Error).message.replace(/^CronPattern: /, '') });
      }
    }
  }
  if (Array.isArray(input.maintenanceWindows)) {
    input.maintenanceWindows.forEach((w: unknown, i) => {
      const at = `${pointer}/maintenanceWindows/${i}`;
      const win = (w ?? {}) as Partial<MaintenanceWindow>;
      for (const key of ['start', 'end'] as const) {
        if (typeof win[key] !== 'string' || !HHMM.test(win[key])) errors.push({ field: `${at}/${key}`, code: 'time', message: 'must be a time HH:MM (00:00 to 23:59)' });
      }
      if (win.start !== undefined && win.start === win.end) errors.push({ field: `${at}/end`, code: 'time', message: 'must differ from start' });
      if (win.days !== undefined && (!Array.isArray(win.days) || win.days.length === 0 || win.days.some((d) => !WEEKDAYS.includes(d)))) {
        errors.push({ field: `${at}/days`, code: 'enum', message: `must list days among ${WEEKDAYS.join(', ')}` });
      }
    });
  }
  return errors;
}

export function assertTiming(input: Parameters<typeof checkTiming>[0]): void {
  const errors = checkTiming(input);
  if (errors.length) throw new HubError('validation_failed', 'The schedule is not valid', { errors });
}

export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Weekday and minute of the day of `at` in `tz`. */
function localTime(at: Date, tz: string): { day: number; minute: number } {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(tz, f);
  }
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  return { day: WEEKDAYS.indexOf((parts.weekday as string).toLowerCase().slice(0, 3) as Weekday), minute: Number(parts.hour) * 60 + Number(parts.minute) };
}

/** The window `at` falls in (in `tz`), if any. */
export function maintenanceWindowAt(at: Date, tz: string, windows: readonly MaintenanceWindow[]): MaintenanceWindow | null {
  if (windows.length === 0) return null;
  const { day, minute } = localTime(at, tz);
  for (const w of windows) {
    const start = minutesOf(w.start);
    const end = minutesOf(w.end);
    const on = (d: number) => !w.days || w.days.includes(WEEKDAYS[(d + 7) % 7]!);
    if (start < end) {
      if (minute >= start && minute < end && on(day)) return w;
    } else if ((minute >= start && on(day)) || (minute < end && on(day - 1))) {
      // Past midnight: the part after midnight belongs to the window that started the day before.
      return w;
    }
  }
  return null;
}

export interface Timing {
  cron: string;
  timezone: string;
  maintenanceWindows: readonly MaintenanceWindow[];
}

/** The first run strictly after `after` that is outside every maintenance window; null if there is none. */
export function nextRunAfter(timing: Timing, after: Date): Date | null {
  const cron = new Cron(timing.cron, { paused: true, timezone: timing.timezone });
  let at: Date | null = after;
  for (let i = 0; i < MAX_SKIPS; i++) {
    at = cron.nextRun(at);
    if (!at) return null;
    if (!maintenanceWindowAt(at, timing.timezone, timing.maintenanceWindows)) return at;
  }
  return null;
}
