-- Image-like datasets record [h, w, c] beside their featureShape, because a flat featureShape
-- (the built-in MNIST is [784]) no longer says how to rotate, translate or draw an example.
ALTER TABLE datasets ADD COLUMN image_shape jsonb;
