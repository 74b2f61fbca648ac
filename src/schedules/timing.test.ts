import { describe, expect, it } from 'vitest';
import { checkTiming, maintenanceWindowAt, nextRunAfter } from './timing.ts';

const at = (iso: string) => new Date(iso);

describe('schedule timing', () => {
  it('reads the cron expression in the schedule time zone, across daylight saving', () => {
    const t = { cron: '30 2 * * *', timezone: 'Europe/London', maintenanceWindows: [] };
    // Winter: London is UTC.
    expect(nextRunAfter(t, at('2026-01-10T00:00:00Z'))?.toISOString()).toBe('2026-01-10T02:30:00.000Z');
    // Summer: London is UTC+1.
    expect(nextRunAfter(t, at('2026-07-10T00:00:00Z'))?.toISOString()).toBe('2026-07-10T01:30:00.000Z');
    const ny = { cron: '0 9 * * 1-5', timezone: 'America/New_York', maintenanceWindows: [] };
    // Saturday 2026-11-21 → Monday 09:00 EST (14:00 UTC).
    expect(nextRunAfter(ny, at('2026-11-21T12:00:00Z'))?.toISOString()).toBe('2026-11-23T14:00:00.000Z');
  });

  it('skips runs inside maintenance windows, including windows past midnight and on some days only', () => {
    const t = { cron: '0 * * * *', timezone: 'UTC', maintenanceWindows: [{ start: '23:00', end: '02:00' }] };
    expect(nextRunAfter(t, at('2026-11-22T22:30:00Z'))?.toISOString()).toBe('2026-11-23T02:00:00.000Z');
    const sundays = { cron: '0 3 * * *', timezone: 'Europe/Berlin', maintenanceWindows: [{ days: ['sun' as const], start: '00:00', end: '06:00' }] };
    // 2026-11-22 is a Sunday: its 03:00 Berlin run is skipped, Monday's is kept.
    expect(nextRunAfter(sundays, at('2026-11-21T23:00:00Z'))?.toISOString()).toBe('2026-11-23T02:00:00.000Z');
    expect(maintenanceWindowAt(at('2026-11-23T00:30:00Z'), 'UTC', t.maintenanceWindows)).not.toBeNull();
    expect(maintenanceWindowAt(at('2026-11-23T02:00:00Z'), 'UTC', t.maintenanceWindows)).toBeNull();
    // Monday 01:00 belongs to the window that started on Sunday 23:00 only when Sunday is one of its days.
    const sat = [{ days: ['sat' as const], start: '23:00', end: '02:00' }];
    expect(maintenanceWindowAt(at('2026-11-22T01:00:00Z'), 'UTC', sat)).not.toBeNull();
    expect(maintenanceWindowAt(at('2026-11-23T01:00:00Z'), 'UTC', sat)).toBeNull();
  });

  it('says when a schedule never runs outside its windows', () => {
    const t = { cron: '0 12 * * *', timezone: 'UTC', maintenanceWindows: [{ start: '11:00', end: '13:00' }] };
    expect(nextRunAfter(t, at('2026-11-22T00:00:00Z'))).toBeNull();
  });

  it('names every bad part of a schedule', () => {
    expect(checkTiming({ cron: '61 * * * *', timezone: 'UTC' })).toEqual([expect.objectContaining({ field: '/cron', code: 'cron' })]);
    expect(checkTiming({ cron: '*/5 * * * * *', timezone: 'UTC' })[0]).toMatchObject({ field: '/cron', message: expect.stringContaining('five fields') });
    expect(checkTiming({ cron: '0 2 * * *', timezone: 'Mars/Olympus' })).toEqual([expect.objectContaining({ field: '/timezone' })]);
    expect(checkTiming({ cron: '@daily', timezone: 'Asia/Tokyo' })).toEqual([]);
    expect(
      checkTiming({ cron: '0 2 * * *', timezone: 'UTC', maintenanceWindows: [{ start: '25:00', end: '01:00' }, { start: '01:00', end: '01:00' }, { start: '01:00', end: '02:00', days: ['someday'] }] }).map((e) => e.field),
    ).toEqual(['/maintenanceWindows/0/start', '/maintenanceWindows/1/end', '/maintenanceWindows/2/days']);
  });
});
