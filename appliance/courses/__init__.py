"""The course content model: screens, start/finish settings, the wire shape of a course."""
