/** A stream the spinner can draw on; `isTTY` is true for a terminal. */
export interface SpinnerStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface Spinner {
  /** Replaces the text next to the spinner. */
  update(text: string): void;
  /** Stops the animation and clears its line. */
  stop(): void;
}

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const FRAME_INTERVAL_MS = 80;
/** Carriage return, then ANSI "erase to end of line". */
const CLEAR_LINE = "\r\u001b[K";

/**
 * Animates a spinner with a status text on `stream` while the CLI waits. It draws only on a
 * terminal, so pipes and log files receive no control characters.
 */
export function startSpinner(stream: SpinnerStream, text: string): Spinner {
  if (!stream.isTTY) return { update: () => {}, stop: () => {} };

  let frame = 0;
  let current = text;
  const draw = (): void => {
    stream.write(`${CLEAR_LINE}${FRAMES[frame % FRAMES.length]} ${current}`);
    frame += 1;
  };

  draw();
  const timer = setInterval(draw, FRAME_INTERVAL_MS);
  timer.unref();

  return {
    update(next) {
      current = next;
    },
    stop() {
      clearInterval(timer);
      stream.write(CLEAR_LINE);
    },
  };
}
