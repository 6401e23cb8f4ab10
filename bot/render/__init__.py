"""Files gpubook hands to other programs: iCalendar feeds (``ics``) and chart images (``chart``).

Each turns the service's snapshots into bytes and does nothing else, so the HTTP route, the
Slack handlers and the command line share one rendering of each.
"""
