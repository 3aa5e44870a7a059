// Inline SVG icons (nothing fetched at run time).
type P = { size?: number };
const svg = (size: number, children: React.ReactNode) => (
  <svg width={size} height={size} viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2"
    strokeLinecap="round" strokeLinejoin="round" aria-hidden="true" focusable="false">
    {children}
  </svg>
);
export const IconLogo = ({ size = 22 }: P) =>
  svg(size, <><path d="M12 2l8 4v6c0 5-3.5 8.5-8 10-4.5-1.5-8-5-8-10V6z" /><path d="M9 12l2 2 4-4" /></>);
export const IconX = ({ size = 16 }: P) => svg(size, <><path d="M18 6L6 18" /><path d="M6 6l12 12" /></>);
export const IconSun = ({ size = 18 }: P) =>
  svg(size, <><circle cx="12" cy="12" r="4" /><path d="M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4" /></>);
export const IconMoon = ({ size = 18 }: P) => svg(size, <path d="M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z" />);
export const IconUp = ({ size = 16 }: P) => svg(size, <path d="M18 15l-6-6-6 6" />);
export const IconDown = ({ size = 16 }: P) => svg(size, <path d="M6 9l6 6 6-6" />);
export const IconCopy = ({ size = 16 }: P) =>
  svg(size, <><rect x="9" y="9" width="13" height="13" rx="2" /><path d="M5 15H4a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2h9a2 2 0 0 1 2 2v1" /></>);
export const IconCheck = ({ size = 14 }: P) => svg(size, <path d="M20 6L9 17l-5-5" />);
export const IconUser = ({ size = 18 }: P) =>
  svg(size, <><circle cx="12" cy="8" r="4" /><path d="M4 21a8 8 0 0 1 16 0" /></>);
