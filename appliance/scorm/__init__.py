"""SCORM export (docs/scorm.md): SCORM 1.2 and 2004 4th edition packages,
`static` (player + content + answer key in the zip) or `dynamic` (the player loads the live course
from the appliance with a view-only package token)."""
