// Types for the one exceljs internal the XLSX reader uses (exceljs declares none for it): its test for a date
// number format and its serial-number-to-date conversion, the same ones it applies to plain date cells.
declare module 'exceljs/lib/utils/utils.js' {
  const utils: {
    isDateFmt(format: string | undefined): boolean;
    excelToDate(serial: number, date1904: boolean): Date;
  };
  export default utils;
}
