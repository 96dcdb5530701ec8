// The terminal's size, following resizes; a fixed size (tests, --size) wins over what stdout reports.

import { useStdout } from 'ink';
import { useEffect, useState } from 'react';

export interface TerminalSize {
  columns: number;
  rows: number;
}

export function useTerminalSize(fixed?: Partial<TerminalSize>): TerminalSize {
  const { stdout } = useStdout();
  const read = (): TerminalSize => ({
    columns: fixed?.columns ?? (stdout.columns || 80),
    rows: fixed?.rows ?? (stdout.rows || 24),
  });
  const [size, setSize] = useState(read);
  useEffect(() => {
    const onResize = (): void => setSize(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
    // read() depends only on stdout and the fixed size
  }, [stdout, fixed?.columns, fixed?.rows]);
  return size;
}
