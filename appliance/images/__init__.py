"""Images for screens and course covers (docs/images.md): the offline illustration library
(library), the model's keywords (keywords), the composed SVG (compose), an operator's remote image
engine (engine), the one entry point the jobs and the builder call (service.illustrate), the images
of generated courses and screens (generated) and the rule every stored image passes (uploads)."""
