// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "./IERC20.sol";

/// @title LendingPool
/// @notice Single-asset lending pool: users deposit an ERC-20 token as collateral and
/// may borrow the same token up to COLLATERAL_FACTOR_BPS (75%) of their own deposit.
/// Kept deliberately simple for benchmarking: no interest, no liquidations, no shares
/// (deposits and debts are plain token amounts). Callers approve the pool on the
/// token before `deposit` and `repay`.
///
/// Storage layout: slot 0 token, slot 1 totalDeposits, slot 2 totalBorrows,
/// slot 3 deposits (mapping(address => uint256)), slot 4 debts (mapping(address => uint256)).
contract LendingPool {
    /// @notice Borrow limit as basis points of a user's deposit (7500 = 75%).
    uint256 public constant COLLATERAL_FACTOR_BPS = 7500;
    uint256 private constant BPS = 10_000;

    address public token;
    uint256 public totalDeposits;
    uint256 public totalBorrows;
    mapping(address => uint256) public deposits;
    mapping(address => uint256) public debts;

    event Deposit(address indexed user, uint256 amount);
    event Withdraw(address indexed user, uint256 amount);
    event Borrow(address indexed user, uint256 amount);
    event Repay(address indexed user, uint256 amount);

    error ZeroAddress();
    error ZeroAmount();
    error InsufficientDeposit(uint256 deposited, uint256 requested);
    error InsufficientCollateral(uint256 limit, uint256 debtAfter);
    error InsufficientCash(uint256 available, uint256 requested);
    error RepayExceedsDebt(uint256 debt, uint256 amount);
    error TransferFailed();

    constructor(address _token) {
        if (_token == address(0)) revert ZeroAddress();
        token = _token;
    }

    /// @notice Tokens held by the pool that are not lent out.
    function availableLiquidity() public view returns (uint256) {
        return totalDeposits - totalBorrows;
    }

    /// @notice Maximum total debt `user` may carry given their current deposit.
    function borrowLimit(address user) public view returns (uint256) {
        return (deposits[user] * COLLATERAL_FACTOR_BPS) / BPS;
    }

    function deposit(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        deposits[msg.sender] += amount;
        totalDeposits += amount;
        _safeTransferFrom(msg.sender, address(this), amount);
        emit Deposit(msg.sender, amount);
    }

    function withdraw(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 deposited = deposits[msg.sender];
        if (amount > deposited) revert InsufficientDeposit(deposited, amount);
        uint256 remaining;
        unchecked {
            remaining = deposited - amount;
        }
        uint256 limit = (remaining * COLLATERAL_FACTOR_BPS) / BPS;
        uint256 debt = debts[msg.sender];
        if (debt > limit) revert InsufficientCollateral(limit, debt);
        uint256 cash = availableLiquidity();
        if (amount > cash) revert InsufficientCash(cash, amount);

        deposits[msg.sender] = remaining;
        totalDeposits -= amount;
        _safeTransfer(msg.sender, amount);
        emit Withdraw(msg.sender, amount);
    }

    function borrow(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 debtAfter = debts[msg.sender] + amount;
        uint256 limit = borrowLimit(msg.sender);
        if (debtAfter > limit) revert InsufficientCollateral(limit, debtAfter);
        uint256 cash = availableLiquidity();
        if (amount > cash) revert InsufficientCash(cash, amount);

        debts[msg.sender] = debtAfter;
        totalBorrows += amount;
        _safeTransfer(msg.sender, amount);
        emit Borrow(msg.sender, amount);
    }

    /// @notice Repays `amount` of the caller's debt; reverts if it exceeds the debt.
    function repay(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 debt = debts[msg.sender];
        if (amount > debt) revert RepayExceedsDebt(debt, amount);
        unchecked {
            debts[msg.sender] = debt - amount;
            // totalBorrows is the sum of all debts, so it is at least `debt`.
            totalBorrows -= amount;
        }
        _safeTransferFrom(msg.sender, address(this), amount);
        emit Repay(msg.sender, amount);
    }

    function _safeTransfer(address to, uint256 amount) private {
        if (!IERC20(token).transfer(to, amount)) revert TransferFailed();
    }

    function _safeTransferFrom(address from, address to, uint256 amount) private {
        if (!IERC20(token).transferFrom(from, to, amount)) revert TransferFailed();
    }
}
