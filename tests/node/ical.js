#!/usr/bin/env node
// Parses an iCalendar text with the ical.js package (the parser Thunderbird uses) and prints its events as JSON, so
// that the tests check the feeds against someone else's reading of RFC 5545 rather than against ours.
//   stdin  the iCalendar text
//   stdout {"calendar": {"prodid", "version", "calscale", "name"},
//           "events": [{"uid", "summary", "description", "status", "start", "end", "dtstamp"}, ...]}
//          start, end and dtstamp as UTC ISO 8601 ("2026-06-02T07:00:00Z"), in the order of the feed.
// Exits 1 with a message on stderr when the text does not parse.
'use strict';

const ICAL = require('ical.js');

// X-WR-CALNAME is not in RFC 5545, so ical.js would keep its value raw (escapes and all); it is TEXT in practice.
ICAL.design.icalendar.property['x-wr-calname'] = {defaultType: 'text'};

function utc(time) {
  if (!time) {
    return null;
  }
  return time.toJSDate().toISOString().replace(/\.000Z$/, 'Z');
}

function describe(text) {
  const calendar = new ICAL.Component(ICAL.parse(text));
  if (calendar.name !== 'vcalendar') {
    throw new Error(`the top component is ${calendar.name}, not vcalendar`);
  }
  const events = calendar.getAllSubcomponents('vevent').map((vevent) => {
    const event = new ICAL.Event(vevent);
    return {
      uid: event.uid,
      summary: event.summary,
      description: event.description,
      status: vevent.getFirstPropertyValue('status'),
      start: utc(event.startDate),
      end: utc(event.endDate),
      dtstamp: utc(vevent.getFirstPropertyValue('dtstamp')),
    };
  });
  return {
    calendar: {
      prodid: calendar.getFirstPropertyValue('prodid'),
      version: calendar.getFirstPropertyValue('version'),
      calscale: calendar.getFirstPropertyValue('calscale'),
      name: calendar.getFirstPropertyValue('x-wr-calname'),
    },
    events,
  };
}

const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', () => {
  try {
    process.stdout.write(JSON.stringify(describe(Buffer.concat(chunks).toString('utf8'))) + '\n');
  } catch (e) {
    process.stderr.write(`ical.js: ${e.message}\n`);
    process.exit(1);
  }
});
