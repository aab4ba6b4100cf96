"""The torch-free evaluation toolkit: benchmark dataset readers (:mod:`.datasets`), tracking metrics
(:mod:`.metrics`) and running/scoring a tracker on a benchmark (:mod:`.evaluate`). It installs with the core
package (numpy only; Pillow, tqdm and matplotlib are imported where used), so a device without torch can
score a tracker; training reads its datasets through the same readers."""
