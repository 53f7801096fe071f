/*
 * rmr_switch: restart CPU0 in AArch64 at a given address (A64, H5, H6 ...).
 *
 * The boot ROM runs in AArch32; an AArch64 CPU can only change execution
 * state through a reset. The RVBAR register of CPU0 (memory-mapped in the
 * CPUCFG block: SocInfo.rvbar_reg) holds the address the core starts at
 * after a warm reset, and the Reset Management Register (cp15 c12, c0, 2)
 * requests that reset:
 *
 *   RVBAR = entry
 *   RMR  |= AA64 (bit 0: come back in AArch64) | RR (bit 1: request reset)
 *
 * The reset happens at the next exception return or WFI, so the thunk then
 * waits in WFI forever. It never returns: the EXEC's status never comes.
 *
 * Calling convention (EXEC from the FEL boot ROM):
 *   - Uploaded to the scratch address, called in ARM state.
 *   - Parameter block right after the code (label `params`):
 *
 *         params + 0   u32 rvbar_reg   address of CPU0's RVBAR (low word)
 *         params + 4   u32 entry       where AArch64 execution starts
 *         params + 8   u32 rmr_bits    bits to set in RMR (3: AA64 | RR)
 *
 *   - ARMv8-A in AArch32 (assembled as ARMv7-A: RMR is a plain cp15 access).
 */
	.syntax unified
	.arch	armv7-a
	.arm
	.text
	.global	rmr_switch

rmr_switch:
	adr	r0, params
	ldmia	r0, {r1, r2, r3}	@ rvbar_reg, entry, rmr_bits
	str	r2, [r1]
	dsb				@ RVBAR holds the entry before the reset request
	isb
	mrc	p15, 0, r0, c12, c0, 2	@ RMR
	orr	r0, r0, r3
	mcr	p15, 0, r0, c12, c0, 2
	isb
wait_for_reset:
	wfi
	b	wait_for_reset
params:				@ the builder appends the block here
