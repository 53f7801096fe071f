/*
 * smc: enter the secure monitor once (`smc #0`) and return.
 *
 * Some boot ROMs (A64, H3, H5, H6: SocInfo.smc_probe_addr) start FEL in the
 * non-secure state when the SoC is fused for secure boot; secure-only SRAM
 * and registers then read as zero. The ROM's monitor handler switches FEL
 * back to the secure state. On a SoC booted non-secure there is no monitor
 * handler and this crashes, so the host runs it only when the probe word
 * reads zero.
 *
 * Calling convention (EXEC from the FEL boot ROM): uploaded to the scratch
 * address, called in ARM state as a leaf function; no parameters, no
 * results; ARMv7-A with the security extensions.
 */
	.syntax unified
	.arch	armv7-a
	.arch_extension sec
	.arm
	.text
	.global	smc

smc:
	smc	#0
	bx	lr
