"""Images for screens and course covers (docs/images.md): the offline illustration library
(library), the model's keywords (keywords), the composed SVG (compose), an operator's remote image
engine (engine) and the one entry point the jobs and the builder call (service.illustrate)."""
